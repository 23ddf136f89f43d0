from webmill.cli import main

main()
