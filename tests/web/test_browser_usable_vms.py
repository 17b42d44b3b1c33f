"""Usable VMs in a real browser against the lab OpenStack (issue 16).

A staff member of a fresh lab department adds an SSH key, then asks in the portal for 2 VMs on
the education cloud's internet zone, each with a 100 GB data disk (the lab's "fake" volume type),
the "web" firewall template and a public address; the department head and the operator approve
from their queues; the queued work runs (the worker's drain, in the test thread, as the other lab
journeys run it).  Then, checked with plain openstacksdk on the lab: both servers ACTIVE in the
department's project with the key, 2 volumes of 100 GB in-use on them, the request's security
group with tcp 80/443 open, a floating IP on each server's port.  Back in the browser the staff
member opens the console link (a new tab, the noVNC address Nova answers), takes a snapshot of a
data volume and restores it to a new volume, and deletes one server keeping its volume: the
server is gone from Nova, its volume is available in the project, and the volumes page lists it
as the department's.  Chinese screens (the default locale).  Screenshots go to
test-artifacts/usable-*.png.  Everything made on the lab is removed at the end, pass or fail.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from cloudmgr.cloud.openstack.keypairs import nova_keypair_name
from cloudmgr.firewall import services as firewall
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import ManagedVolume
from cloudmgr.servicerequests.provisioning import cloud_keypair_name
from tests.conftest import ONE_DATABASE, lab_connection
from tests.journey_fixtures import LabJourney, build_lab_journey, clean_lab_department
from tests.keys.keygen import ed25519_key, public_line
from tests.web.helpers import click_nav
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from web import create_app

pytestmark = [pytest.mark.lab, pytest.mark.browser, pytest.mark.slow]

PASSWORD = "lab-password-1"  # build_lab_journey's users
USER_DATA = "#cloud-config\npackages: [nginx]\n"
DISK_GB = 100
WAIT = 300


# --- the lab department and the app serving it ----------------------------------------------------


def _clean_lab(j: LabJourney) -> None:
    """Everything the journey may have made in the department's project, then the project and its
    domain: servers, floating IPs, snapshots, volumes, security groups, the keypair."""
    conn = lab_connection(Path(j.clouds_yaml))
    project_id = j.project_id
    servers = j.nova_servers()
    for server in servers:
        conn.compute.delete_server(server, ignore_missing=True)
    for ip in list(conn.network.ips(project_id=project_id)):
        conn.network.delete_ip(ip, ignore_missing=True)
    for server in servers:
        conn.compute.wait_for_delete(server, wait=WAIT)
    snapshots = [
        s
        for s in conn.block_storage.snapshots(details=True, all_projects=True, project_id=project_id)
        if s.project_id == project_id
    ]
    for snapshot in snapshots:
        conn.block_storage.delete_snapshot(snapshot, ignore_missing=True)
    for snapshot in snapshots:
        conn.block_storage.wait_for_delete(snapshot, wait=WAIT)
    volumes = [
        v
        for v in conn.block_storage.volumes(details=True, all_projects=True, project_id=project_id)
        if v.project_id == project_id
    ]
    for volume in volumes:
        if volume.status in {"in-use", "attaching", "detaching"}:  # its server is gone: Cinder hears late
            conn.block_storage.wait_for_status(volume, "available", failures=["error"], wait=120)
        conn.block_storage.delete_volume(volume, ignore_missing=True)
    for volume in volumes:
        conn.block_storage.wait_for_delete(volume, wait=WAIT)
    for group in list(conn.network.security_groups(project_id=project_id)):
        if group.name != "default":
            conn.network.delete_security_group(group, ignore_missing=True)
    for keypair in list(conn.compute.keypairs()):
        if keypair.name.startswith(f"cm-{project_id}-"):
            conn.compute.delete_keypair(keypair, ignore_missing=True)
    for group in list(conn.network.security_groups(project_id=project_id)):  # the project's default
        conn.network.delete_security_group(group, ignore_missing=True)
    clean_lab_department(j)


@pytest.fixture
def usable_lab(lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path) -> Iterator[LabJourney]:
    """A fresh department on the lab's education cloud (quota: 3 instances, the small size's
    2 floating IPs and 500 GB) and the operators' standard firewall templates, as
    `cloudmgr organisation seed-firewall` makes them."""
    j = build_lab_journey(lab_runtime, tmp_path, lab_clouds_yaml)
    try:
        with j.rt.db.unit_of_work() as uow:
            firewall.seed_standard_templates(uow.session, Actor.system("test"))
        yield j
    finally:
        _clean_lab(j)


@pytest.fixture
def lab_server(usable_lab: LabJourney) -> Iterator[str]:
    app = create_app(runtime=usable_lab.rt)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="usable-vms-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _servers(j: LabJourney, request_id: int) -> dict[str, tuple[int, str | None]]:
    """name -> (our id, Nova's id) of the request's servers."""
    with j.rt.db.unit_of_work() as uow:
        rows = uow.session.scalars(select(ManagedServer).where(ManagedServer.request_id == request_id))
        return {s.name: (s.id, s.server_id) for s in rows}


def _volumes(j: LabJourney) -> dict[int, tuple[str, str | None, str]]:
    """id -> (name, Cinder's id, state) of the department's volumes, as cloudmgr has them."""
    with j.rt.db.unit_of_work() as uow:
        rows = uow.session.scalars(select(ManagedVolume).order_by(ManagedVolume.id))
        return {v.id: (v.name, v.volume_id, v.state.value) for v in rows}


# --- the journey ------------------------------------------------------------------------------------


@ONE_DATABASE
@pytest.mark.timeout(900)
def test_usable_vms_in_the_browser_on_the_lab(lab_server: str, usable_lab: LabJourney, artifacts_dir: Path) -> None:
    _require_chromium()
    from playwright.sync_api import ConsoleMessage, Page, Response, Route, sync_playwright

    base = lab_server
    j = usable_lab
    key = j.department_key
    conn = lab_connection(Path(j.clouds_yaml))
    problems: list[str] = []
    for old in artifacts_dir.glob("usable-*.png"):
        old.unlink()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def on_response(response: Response) -> None:
        if response.request.resource_type != "document" and response.status >= 400:
            problems.append(f"{response.status} {response.url}")

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(artifacts_dir / f"usable-{name}.png"), full_page=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        contexts: list[Any] = []

        def login(username: str) -> Page:
            context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
            contexts.append(context)
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.on("console", on_console)
            page.on("response", on_response)
            page.goto(f"{base}/login")
            page.fill("#username", username)
            page.fill("#password", PASSWORD)
            page.click("#submit")
            page.wait_for_load_state()
            assert page.get_attribute("html", "lang") == "zh-CN"
            return page

        try:
            # 1. The staff member adds the SSH key of their laptop.
            staff = login(f"{key}-staff")
            click_nav(staff, "SSH 密钥")
            staff.wait_for_url(f"{base}/portal/keys")
            staff.fill("#name", "laptop")
            staff.fill("#public_key", public_line(ed25519_key(), "zhang@laptop"))
            staff.click("#add")
            staff.wait_for_url(f"{base}/portal/keys")
            keys_table = staff.inner_text("table")
            assert "laptop" in keys_table and "ssh-ed25519" in keys_table
            assert "暂无" not in keys_table
            shot(staff, "1-key")

            # 2. The request: 2 VMs on the internet zone, a 100 GB data disk each, the web
            #    template, a public address each, the key and a cloud-config.
            click_nav(staff, "新建申请")
            staff.wait_for_url(f"{base}/portal/requests/new")
            with staff.expect_navigation():
                staff.select_option("#cloud", "education")
            staff.check("input[name=zone][value=internet]")
            staff.check("tr:has-text('m1.small') input[name=flavor]")
            staff.fill("#count", "2")
            staff.fill("#name_prefix", "web")
            staff.fill("#application_system", "部门门户网站")
            staff.fill("#justification", "部门门户网站上云：两台互联网区服务器，各带 100 GB 数据盘和公网地址。")
            laptop = staff.locator("#ssh_key option", has_text="laptop")
            assert laptop.count() == 1
            staff.select_option("#ssh_key", value=laptop.get_attribute("value"))
            staff.fill("#user_data", USER_DATA)
            staff.fill("#disk1_size", str(DISK_GB))
            fake = staff.locator("#disk1_type option", has_text="fake")
            assert fake.count() == 1, staff.inner_text("#disk1_type")
            assert "每 GB 每月" in fake.inner_text()  # its price, in Chinese
            staff.select_option("#disk1_type", value=fake.get_attribute("value"))
            staff.check("#public_address")
            web_template = "[data-testid=firewall] label.choice:has(strong:text-is('web')) input"
            staff.check(web_template)
            staff.click("#preview")
            preview = staff.inner_text("[data-testid=preview]")
            assert "符合配额" in preview, preview
            assert f"数据盘 {DISK_GB} GB" in preview and "公网地址" in preview, preview
            assert "部门负责人" in preview and "云平台运维人员" in preview, preview
            assert staff.locator("[data-testid=firewall-reason]").count() == 1
            # The form kept every choice through the preview.
            assert staff.is_checked("input[name=zone][value=internet]")
            assert staff.input_value("#disk1_size") == str(DISK_GB)
            assert staff.is_checked("#public_address") and staff.is_checked(web_template)
            shot(staff, "2-preview")
            staff.click("#submit")
            staff.wait_for_url(re.compile(rf"{re.escape(base)}/portal/requests/\d+$"))
            request_id = int(staff.url.rsplit("/", 1)[1])
            assert "已提交审批" in staff.inner_text(".flashes")
            assert "待审批" in staff.inner_text("h1")
            detail = staff.inner_text("main")
            assert "web" in detail and "80" in detail and "443" in detail, detail
            shot(staff, "3-submitted")

            # 3. The department head, then the operator (the web template opens ports to the
            #    internet), approve from their queues.
            head = login(f"{key}-head")
            click_nav(head, "待我审批")
            head.wait_for_url(f"{base}/portal/approvals")
            row = head.locator(f"tr[data-request='{request_id}']")
            assert "互联网" in row.inner_text()
            row.locator(f"#reason-{request_id}").fill("同意，门户网站按期上线")
            row.locator(f"[data-testid=approve-{request_id}]").click()
            head.wait_for_url(f"{base}/portal/approvals")
            assert f"申请 #{request_id} 已批准" in head.inner_text(".flashes")

            ops = login(f"{key}-ops")
            click_nav(ops, "审批队列")
            ops.wait_for_url(f"{base}/ops/approvals")
            row = ops.locator(f"tr[data-request='{request_id}']")
            assert "实验部门" in row.inner_text()
            row.locator(f"#reason-{request_id}").fill("只开放 80/443，同意")
            row.locator(f"[data-testid=approve-{request_id}]").click()
            ops.wait_for_url(f"{base}/ops/approvals")
            assert "正在创建" in ops.inner_text(".flashes")
            shot(ops, "4-operator-approved")

            # 4. The queue runs: the servers, their disks and addresses on the lab.
            j.drain()
            with j.rt.db.unit_of_work() as uow:
                request = uow.session.get_one(ServiceRequest, request_id)
                assert request.state == "active", (request.state, request.state_reason)
                key_name = nova_keypair_name(j.project_id, cloud_keypair_name(request) or "")
                plan = firewall.request_plan(uow.session, request_id, request.department, request.zone)
            servers = _servers(j, request_id)
            assert sorted(servers) == ["web-01", "web-02"]

            # 5. What the lab holds, read with plain openstacksdk.
            nova = {s.id: s for s in j.nova_servers()}
            assert set(nova) == {nova_id for _, nova_id in servers.values()}
            assert all(s.status == "ACTIVE" and s.project_id == j.project_id for s in nova.values())
            assert {s.key_name for s in nova.values()} == {key_name}
            assert conn.compute.get_keypair(key_name).public_key.startswith("ssh-ed25519 ")
            volumes = [
                v
                for v in conn.block_storage.volumes(details=True, all_projects=True, project_id=j.project_id)
                if v.project_id == j.project_id
            ]
            assert sorted((v.size, v.status, v.volume_type) for v in volumes) == [(DISK_GB, "in-use", "fake")] * 2
            assert sorted(a["server_id"] for v in volumes for a in v.attachments) == sorted(nova)
            for server in nova.values():
                assert plan.group_name in {g["name"] for g in server.security_groups}
            (group,) = conn.network.security_groups(project_id=j.project_id, name=plan.group_name)
            opened = {
                (r.protocol, r.port_range_min, r.port_range_max, r.remote_ip_prefix)
                for r in conn.network.security_group_rules(security_group_id=group.id, direction="ingress")
            }
            for port in (80, 443):
                assert ("tcp", port, port, "0.0.0.0/0") in opened and ("tcp", port, port, "::/0") in opened, opened
            ips = list(conn.network.ips(project_id=j.project_id))
            assert len(ips) == 2 and all(ip.port_id for ip in ips)
            public = {conn.network.get_port(ip.port_id).device_id: ip.floating_ip_address for ip in ips}
            assert sorted(public) == sorted(nova)  # one address on each server's port

            # The staff member sees two running servers, each with its disk and public address.
            click_nav(staff, "云主机")
            staff.wait_for_url(f"{base}/portal/servers")
            assert staff.locator("tr.server-row .state").all_inner_texts() == ["运行中"] * 2
            shot(staff, "5-servers")
            first_id, first_nova = servers["web-01"]
            staff.click("tr.server-row th a >> text=web-01")
            staff.wait_for_url(f"{base}/portal/servers/{first_id}")
            storage = staff.inner_text("[data-testid=server-storage]")
            assert f"{DISK_GB} GB" in storage and "已挂载" in storage, storage
            assert first_nova is not None and public[first_nova] in staff.inner_text("[data-testid=public-address]")
            shot(staff, "6-server")

            # 6. The console: its link opens in a new tab at the noVNC address Nova made.  Nothing
            #    listens there in the lab, so the browser's request is answered here.
            staff.click("[data-testid=console]")
            staff.wait_for_url(f"{base}/portal/servers/{first_id}/console")
            assert "web-01 的控制台" in staff.inner_text("h1")
            link = staff.locator("[data-testid=console-link]")
            assert link.inner_text().strip() == "打开控制台"
            assert link.get_attribute("target") == "_blank"
            assert "noopener" in (link.get_attribute("rel") or "")
            # Nova builds the link from the lab's novncproxy_base_url and a token of its own: the
            # page's link is Nova's answer (the same address, another token: one per opening).
            href = link.get_attribute("href") or ""
            novnc = re.compile(r"^(https?://[^/?#]+)/vnc_lite\.html\?path=%3Ftoken%3D[0-9a-f-]{36}$")
            ours = novnc.match(href)
            nova_answer = conn.compute.create_console(first_nova, console_type="novnc")
            theirs = novnc.match(nova_answer["url"])
            assert ours and theirs and nova_answer["type"] == "novnc", (href, nova_answer)
            assert ours.group(1) == theirs.group(1) and href != nova_answer["url"]
            assert "FAKE CONSOLE OUTPUT" in staff.inner_text("[data-testid=console-log]")
            opened_urls: list[str] = []

            def novnc_page(route: Route) -> None:
                opened_urls.append(route.request.url)
                route.fulfill(status=200, content_type="text/html", body="<title>noVNC</title>noVNC")

            staff.context.route(f"{ours.group(1)}/**", novnc_page)
            with staff.expect_popup() as popup_info:
                link.click()
            console_tab = popup_info.value
            console_tab.wait_for_load_state()
            assert console_tab.url == href and opened_urls == [href]
            assert console_tab.title() == "noVNC"
            assert staff.url == f"{base}/portal/servers/{first_id}/console"  # the portal stays in its tab
            console_tab.close()
            shot(staff, "7-console")

            # 7. A snapshot of web-01's data volume, restored to a new volume.
            staff.goto(f"{base}/portal/servers/{first_id}")
            staff.click("[data-testid=server-storage] >> text=快照与备份")
            staff.wait_for_url(re.compile(rf"{re.escape(base)}/portal/volumes/\d+/backups$"))
            source_volume_id = int(staff.url.rsplit("/", 2)[1])
            assert "快照与备份" in staff.inner_text("h1")
            staff.click("button:text-is('创建快照')")
            staff.wait_for_url(f"{base}/portal/volumes/{source_volume_id}/backups")
            assert "已提交快照请求" in staff.inner_text(".flashes")
            j.drain()
            staff.reload()
            snapshots = staff.locator("section[aria-labelledby=snapshots-title] tbody tr")
            assert snapshots.count() == 1
            assert "已就绪" in snapshots.inner_text() and f"{DISK_GB} GB" in snapshots.inner_text()
            cinder_snapshots = [
                s
                for s in conn.block_storage.snapshots(details=True, all_projects=True, project_id=j.project_id)
                if s.project_id == j.project_id
            ]
            source_cinder = _volumes(j)[source_volume_id][1]
            assert [(s.volume_id, s.size, s.status) for s in cinder_snapshots] == [
                (source_cinder, DISK_GB, "available")
            ]
            shot(staff, "8-snapshot")
            before = set(_volumes(j))
            snapshots.locator("button:text-is('恢复为新云硬盘')").click()
            staff.wait_for_url(f"{base}/portal/volumes/{source_volume_id}/backups")
            assert "正在从该快照创建新的云硬盘" in staff.inner_text(".flashes")
            j.drain()
            (restored_id,) = set(_volumes(j)) - before
            restored_name, restored_cinder, restored_state = _volumes(j)[restored_id]
            assert restored_state == "available" and restored_cinder
            restored = conn.block_storage.get_volume(restored_cinder)
            assert (restored.size, restored.status, restored.project_id) == (DISK_GB, "available", j.project_id)
            assert restored.snapshot_id == cinder_snapshots[0].id and not restored.attachments
            click_nav(staff, "存储卷")
            staff.wait_for_url(f"{base}/portal/volumes")
            row = staff.locator(f"tr[data-volume='{restored_id}']")
            assert restored_name in row.inner_text() and "未挂载" in row.inner_text()
            shot(staff, "9-restored")

            # 8. web-02 is deleted; its data volume is kept.
            second_id, second_nova = servers["web-02"]
            with j.rt.db.unit_of_work() as uow:
                (kept_id,) = uow.session.scalars(
                    select(ManagedVolume.id).where(ManagedVolume.server_id == second_id)
                ).all()
            kept_name = "web-02-data1"  # a request's disk is named after its server, and keeps the name
            kept_cinder = _volumes(j)[kept_id][1]
            assert kept_cinder and conn.block_storage.get_volume(kept_cinder).name == kept_name
            staff.goto(f"{base}/portal/servers/{second_id}")
            choice = staff.inner_text("[data-testid=delete-volumes]")
            assert kept_name in choice and "保留" in choice, choice
            assert "释放" in staff.inner_text("[data-testid=delete-address]")
            staff.check("input[name=volumes][value=keep]")
            staff.fill("#confirm", "web-02")
            staff.click("#delete")
            staff.wait_for_url(f"{base}/portal/servers/{second_id}")
            assert "web-02 正在删除；其数据盘为本部门保留" in staff.inner_text(".flashes")
            j.drain()
            assert second_nova is not None and conn.compute.find_server(second_nova, all_projects=True) is None
            assert [s.id for s in j.nova_servers()] == [first_nova]
            assert _volumes(j)[kept_id] == (kept_name, kept_cinder, "available")
            kept = conn.block_storage.get_volume(kept_cinder)
            assert (kept.status, kept.size, kept.project_id) == ("available", DISK_GB, j.project_id)
            assert not kept.attachments
            assert len(list(conn.network.ips(project_id=j.project_id))) == 1  # web-02's address released
            staff.goto(f"{base}/portal/servers/{second_id}")
            assert "已删除" in staff.inner_text("h1")
            click_nav(staff, "存储卷")
            staff.wait_for_url(f"{base}/portal/volumes")
            assert "实验部门" in staff.inner_text(".page-head")
            row = staff.locator(f"tr[data-volume='{kept_id}']")
            cells = row.locator("td").all_inner_texts()
            assert kept_name in row.inner_text() and "未挂载" in cells and f"{DISK_GB} GB" in cells, cells
            assert cells[-2] == "—"  # attached to no server
            row.locator(f"[data-testid=volume-backups-{kept_id}]").click()
            staff.wait_for_url(f"{base}/portal/volumes/{kept_id}/backups")
            assert staff.locator("button:text-is('创建快照')").count() == 1
            assert "暂无快照" in staff.inner_text("section[aria-labelledby=snapshots-title]")
            shot(staff, "10-kept-volume")
        finally:
            for context in contexts:
                context.close()
            browser.close()

    assert not problems, f"browser console errors: {problems}"
