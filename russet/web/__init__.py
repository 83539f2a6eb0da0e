"""What the HTTP admin surfaces (REST API and console) share: request dependencies and the one
mapping of error kinds to HTTP statuses. Device endpoints speak Apple's protocols and do not use it."""
