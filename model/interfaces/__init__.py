"""Layer 5, interfaces: the command line (`cli`, with its subcommands) and the dashboard."""
