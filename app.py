"""Herald's Chalice app: creates the app and registers blueprints and event handlers."""

from chalice.app import Chalice

from chalicelib.api import handlers

app = Chalice(app_name="herald")
app.register_blueprint(handlers.bp)
