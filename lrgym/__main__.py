from lrgym.cli import main

main()
