"""The HTTP API for operators and applications, served in the broker's event loop
(`roost.api.server.ApiServer`; the FastAPI app is made by `roost.api.app.create_app`)."""
