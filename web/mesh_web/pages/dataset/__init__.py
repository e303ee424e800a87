"""One dataset's page: its numbers and a chart of its series; for analysts and admins, editing and
deleting it, uploading a CSV (with progress and a per-line report),
generating sample data, running an analysis now, and its schedules (create,
edit, enable, run now, delete). Viewers see the numbers and the schedules.

``state.py`` holds what the page shows (the dataset and its schedules); each
feature is a module with its substate and its card: ``chart``, ``edit``, ``upload``,
``sample_data``, ``run``, ``schedules``; ``page.py`` puts the cards together.
A new feature is one more such module."""

from mesh_web.pages.dataset.page import dataset_page
from mesh_web.pages.dataset.state import ROUTE, DatasetState

__all__ = ["ROUTE", "DatasetState", "dataset_page"]
