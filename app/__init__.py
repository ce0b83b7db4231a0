"""Pulseboard: a real-time dashboard server. The app factory is :mod:`app.serve.factory`."""
