"""Device groups: static (members named by UDID or serial) and smart (a query over device facts),
and scopes built from them (include/exclude), which blueprints target."""
