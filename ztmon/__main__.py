from ztmon.cli import main

main()
