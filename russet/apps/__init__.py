"""The app catalogue: Apps and Books apps and enterprise apps, hosted downloads, licences for blueprints."""
