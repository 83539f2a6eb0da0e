"""The web console: server-rendered pages for IT admins and privacy officers under /console.

Pages call the services (`russet.devices`, `russet.ledger_admin`, `russet.groups`,
`russet.library`, `russet.blueprints`...) as the REST API does;
nothing here decides anything the API would decide differently.
"""
