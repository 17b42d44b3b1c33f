"""Forms of the capacity, consolidation and planner pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DecimalField, IntegerField, SelectField, SubmitField
from wtforms.validators import InputRequired, NumberRange

from web.common.forms import SafeForm

# The planner's default (cloudmgr.capacity.planner.model.DEFAULT_MAX_WAVE), without importing numpy here.
PLANNER_MAX_WAVE = 50


class CapacityCsvForm(SafeForm):
    csv_file = FileField(_l("Capacity CSV"), validators=[FileRequired(_l("Choose a CSV file."))])
    submit = SubmitField(_l("Import"))


class PlanRunForm(SafeForm):
    cloud = SelectField(_l("Cloud"), validators=[InputRequired()])
    max_wave = IntegerField(
        _l("Moves per wave (at most)"),
        default=5,
        validators=[InputRequired(), NumberRange(min=1, max=500)],
    )
    submit = SubmitField(_l("Plan a run"))


class PlannerForm(SafeForm):
    servers = FileField(_l("Servers CSV"), validators=[FileRequired(_l("Choose a CSV file."))])
    host_vcpus = IntegerField(
        _l("Host vCPUs"), default=64, validators=[InputRequired(), NumberRange(min=1, max=100000)]
    )
    host_ram_gb = DecimalField(
        _l("Host RAM (GB)"), default=512, validators=[InputRequired(), NumberRange(min=0.001, max=10**7)]
    )
    host_disk_gb = DecimalField(
        _l("Host disk (GB)"), default=4000, validators=[InputRequired(), NumberRange(min=0.001, max=10**9)]
    )
    cpu_ratio = DecimalField(
        _l("vCPU overcommit"), default=1, validators=[InputRequired(), NumberRange(min=0.01, max=100)]
    )
    ram_ratio = DecimalField(
        _l("RAM overcommit"), default=1, validators=[InputRequired(), NumberRange(min=0.01, max=100)]
    )
    max_wave = IntegerField(
        _l("Servers per wave (at most)"),
        default=PLANNER_MAX_WAVE,
        validators=[InputRequired(), NumberRange(min=1, max=100000)],
    )
    # Unticked (the default), a row that says nothing about its classification and is not in the
    # inventory is refused: blank must never silently count as non-classified (issue 14).
    blank_is_non_classified = BooleanField(
        _l("Rows with an empty classification are non-classified (I checked them)"), default=False
    )
    submit = SubmitField(_l("Plan"))
