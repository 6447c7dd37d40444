"""Merchants' own provider accounts ("payment configurations"): credentials encrypted at rest."""
