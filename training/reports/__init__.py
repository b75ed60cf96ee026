"""Reports for people: figures measured on the event tables, as JSON and as HTML pages."""
