"""The software catalog: Backstage-compatible entities, their relations and API."""
