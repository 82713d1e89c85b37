"""Services: business logic with no HTTP. They raise domain errors."""
