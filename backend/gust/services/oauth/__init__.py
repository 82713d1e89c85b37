"""Sign-in with OAuth 2 and OpenID Connect providers."""
