"""The whole flow against the traditional one (issue 22 item 4): ``tijdig flow-eval``."""
