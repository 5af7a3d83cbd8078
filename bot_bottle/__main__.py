from bot_bottle.cli.main import main

main()
