from ravelive.cli import main

main()
