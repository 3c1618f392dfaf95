"""A toy feature, declared the way a real one is (see CONTRIBUTING.md), to prove that adding a feature needs no
edit outside its own files: residents water the shared plants.

- domain.py: its table, its action with a default role, its settings, its service and its personal-data
  provider (what a real feature keeps in its domain package: models, feature.py, services);
- migration.py: creates its table (a real feature adds an Alembic revision under migrations/versions);
- chat.py: its handlers, job and manifest (a real feature's bot package: handlers, jobs, manifest.py).

tests/test_toy_feature.py builds the app with it and drives it through the conversation. Its English strings are
not in the catalogs (tests are not extracted), so a Chinese reader would see them in English: a real feature's
strings go through `python -m i18n.catalog all` like every other."""
