"""One module per `bedrock-rules` command; `cli.COMMANDS` lists them."""
