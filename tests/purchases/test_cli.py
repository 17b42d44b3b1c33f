"""``cloudmgr purchases list|show|decide`` and ``cloudmgr showback``, in process."""

from __future__ import annotations

from click.testing import CliRunner, Result

from cloudmgr.cli import main
from cloudmgr.purchases import services
from tests.journey_fixtures import Journey
from tests.purchases.helpers import server_form
from tests.web.helpers import PASSWORDS


def _run(pj: Journey, *args: str) -> Result:
    """The command; a decision ``--as`` someone is given that user's demo password, as typed at the prompt."""
    env = {
        "CLOUDMGR_INSTANCE_PATH": str(pj.rt.settings.instance_path),
        "CLOUDMGR_DATABASE_URL": pj.rt.settings.database_url,
        "CLOUDMGR_CLOUD_PROVIDER": "simulated",
    }
    acting = args[args.index("--as") + 1] if "--as" in args else None
    return CliRunner().invoke(main, list(args), env=env, input=f"{PASSWORDS[acting]}\n" if acting else None)


def test_purchases_cli(pj: Journey) -> None:
    with pj.rt.db.unit_of_work() as uow:
        pid = services.create_purchase(
            uow.session, pj.staff, server_form(), submit=True, context=services.context_for(None)
        ).id
    pj.drain()  # the findings with the clouds' live capacity (a work item, after the commit)
    listed = _run(pj, "purchases", "list", "--queue")
    assert listed.exit_code == 0 and f"#{pid}" in listed.output and "cloud_provides" in listed.output
    shown = _run(pj, "purchases", "show", str(pid))
    assert shown.exit_code == 0 and "finding     [block] cloud_provides" in shown.output
    for args, message in (
        (("purchases", "decide", str(pid), "--block", "--as", "finance"), "a reason is required"),
        (("purchases", "decide", str(pid), "--approve", "--as", "zhangwei"), "not a finance reviewer"),
        (("purchases", "decide", str(pid), "--as", "finance"), "choose --approve, --block or --return"),
        (("purchases", "decide", "999999", "--approve", "--as", "finance"), "no purchase request 999999"),
        (("purchases", "show", "0"), "Invalid value"),
    ):
        result = _run(pj, *args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    wrong = CliRunner().invoke(
        main,
        ["purchases", "decide", str(pid), "--block", "--reason", "云上已有", "--as", "finance"],
        env={
            "CLOUDMGR_INSTANCE_PATH": str(pj.rt.settings.instance_path),
            "CLOUDMGR_DATABASE_URL": pj.rt.settings.database_url,
        },
        input="not-finance's-password\n",
    )
    assert wrong.exit_code != 0 and "finance:" in wrong.output  # a typed name is not the reviewer
    decided = _run(pj, "purchases", "decide", str(pid), "--block", "--reason", "云上已有", "--as", "finance")
    assert decided.exit_code == 0 and f"purchase #{pid} blocked" in decided.output
    showback = _run(pj, "showback", "--csv")
    assert showback.exit_code == 0 and showback.output.startswith("department,")
