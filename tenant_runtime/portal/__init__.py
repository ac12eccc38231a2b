"""The portal's server-rendered pages."""
