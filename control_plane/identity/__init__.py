"""Who is who: organizations, users and their memberships."""
