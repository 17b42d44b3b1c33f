"""The journey fixtures live in tests/journey_fixtures.py (a plugin of the root conftest, so
every test package can use them); the names are re-exported here for the tests' imports."""

from tests.journey_fixtures import Journey, LabJourney, build_lab_journey, clean_lab_department

__all__ = ["Journey", "LabJourney", "build_lab_journey", "clean_lab_department"]
