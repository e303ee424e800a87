"""The web app's pages: one module per page, with its State beside it."""
