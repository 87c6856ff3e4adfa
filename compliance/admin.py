"""The compliance pages in admin: search the audit log, one order's timeline, one account's day,
exports (CSV, Excel) of a search, and the replay of an account at a past moment with its check.

Read-only. Search, timelines and days need ``compliance.view_compliancelog``; exports
``compliance.view_export`` (each export is itself audited); replay ``compliance.view_replay``
(staff/roles.py gives all three to the Compliance role). Pages are keyed, never counted
(compliance/selectors.py), so they stay fast on a log of millions of rows.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext

from audit.services import audit_record
from compliance import exports
from compliance.models import ComplianceLog
from compliance.replay import account_replay, account_replay_check
from compliance.report_compliance import compliance_chart, compliance_report
from compliance.reports import risk_effectiveness
from compliance.selectors import (
    EXPORT_FIELDS,
    PAGE_SIZE,
    account_day,
    audit_export_rows,
    audit_page,
    audit_query_parse,
    order_timeline,
    parse_moment,
)
from compliance.trading_reports import daily_trading, strategy_effectiveness
from staff.admin_tools import actor_of, local_time
from trading.errors import InvalidOrder
from trading.models import Account

VIEW = "compliance.view_compliancelog"
EXPORT = "compliance.view_export"
REPLAY = "compliance.view_replay"
DAY_ROWS = PAGE_SIZE  # an account's day page shows its first events; the search (linked) pages through all of them


@admin.register(ComplianceLog)
class ComplianceLogAdmin(admin.ModelAdmin):
    """The "合规查询" entry of the admin index: its list page is the search."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.has_perm(VIEW)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.search_view), name="compliance_search"),
            path("order/<int:order_id>/", wrap(self.order_view), name="compliance_order"),
            path("account/<str:account>/<str:day>/", wrap(self.day_view), name="compliance_day"),
            path("export.<str:fmt>", wrap(self.export_view), name="compliance_export"),
            path("replay/", wrap(self.replay_view), name="compliance_replay"),
            path("reports/risk/", wrap(self.risk_report_view), name="compliance_risk_report"),
            path("reports/daily/", wrap(self.daily_report_view), name="compliance_daily_report"),
            path("reports/strategies/", wrap(self.strategy_report_view), name="compliance_strategy_report"),
            path("reports/compliance/", wrap(self.compliance_report_view), name="compliance_compliance_report"),
        ]

    # ------------------------------------------------------------------ helpers

    def _require(self, request: HttpRequest, permission: str) -> None:
        if not (request.user.is_active and request.user.has_perm(permission)):
            raise PermissionDenied

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title,
                "may_export": request.user.has_perm(EXPORT), "may_replay": request.user.has_perm(REPLAY), **extra}

    # ------------------------------------------------------------------ pages

    def search_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, VIEW)
        error = ""
        page = None
        params: dict[str, str] = {}
        try:
            query = audit_query_parse(request.GET)
            params = query.as_params()
            page = audit_page(query)
        except InvalidOrder as exc:
            error = str(exc)
        rows = self._rows(page.events if page else [])
        base = urlencode(params)
        context = self._context(
            request, gettext("Audit search"), rows=rows, error=error, form=request.GET,
            next_url=f"?{base}&before={page.next_before}" if page and page.next_before else "",
            first_url=f"?{base}" if request.GET.get("before") else "",
            csv_url=f"{reverse('admin:compliance_export', args=['csv'])}?{base}",
            xlsx_url=f"{reverse('admin:compliance_export', args=['xlsx'])}?{base}")
        return TemplateResponse(request, "admin/compliance/search.html", context)

    def _rows(self, events: list[Any]) -> list[dict[str, Any]]:
        # The links are built from one reversed URL each (reverse() per row is a good part of a page's time).
        order_base = reverse("admin:compliance_order", args=[0]).removesuffix("0/")
        day_base = reverse("admin:compliance_day", args=["account", "day"]).removesuffix("account/day/")
        rows = []
        for event in events:
            local = timezone.localtime(event.occurred_at)
            rows.append({
                "id": event.pk, "at": f"{local:%Y-%m-%d %H:%M:%S}", "actor": f"{event.actor_type}:{event.actor}",
                "action": event.action, "object": f"{event.object_type} #{event.object_id}",
                "order_url": (f"{order_base}{event.object_id}/"
                              if event.object_type == "order" and event.object_id.isdigit() else ""),
                "account": event.account,
                "day_url": f"{day_base}{quote(event.account, safe='')}/{local.date().isoformat()}/" if event.account else "",
                "after": exports.cell_text(event.after), "reason": event.reason,
            })
        return rows

    def order_view(self, request: HttpRequest, order_id: int) -> HttpResponse:
        self._require(request, VIEW)
        order, entries = order_timeline(order_id)
        if order is None:
            raise Http404
        rows = [{"at": local_time(e.at), "kind": e.kind, "what": e.what, "actor": e.actor,
                 "detail": exports.cell_text(e.detail), "reason": e.reason, "ref": e.ref} for e in entries]
        return TemplateResponse(request, "admin/compliance/order.html",
                                self._context(request, gettext("Order #%(id)s timeline") % {"id": order.pk}, order=order, rows=rows))

    def day_view(self, request: HttpRequest, account: str, day: str) -> HttpResponse:
        self._require(request, VIEW)
        try:
            when = date.fromisoformat(day)
        except ValueError:
            raise Http404 from None
        summary = account_day(account, when, limit=DAY_ROWS)
        rows = self._rows(summary.events)
        start = when.isoformat()
        export = urlencode({"account": account, "since": start, "until": start})
        return TemplateResponse(request, "admin/compliance/day.html", self._context(
            request, gettext("%(account)s on %(day)s") % {"account": account, "day": start}, summary=summary, rows=rows,
            csv_url=f"{reverse('admin:compliance_export', args=['csv'])}?{export}",
            search_url=f"{reverse('admin:compliance_search')}?{export}"))

    def export_view(self, request: HttpRequest, fmt: str) -> HttpResponseBase:
        self._require(request, EXPORT)
        if fmt not in ("csv", "xlsx"):
            raise Http404
        try:
            query = audit_query_parse(request.GET)
        except InvalidOrder as exc:
            return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
        audit_record(actor=actor_of(request), action="audit.exported", object_type="audit_log", object_id=fmt,
                     after={"format": fmt, "filters": query.as_params()})
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        rows = audit_export_rows(query)
        if fmt == "csv":
            response = StreamingHttpResponse(exports.csv_stream(EXPORT_FIELDS, rows), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
            return response
        return FileResponse(exports.xlsx_file(EXPORT_FIELDS, rows), as_attachment=True, filename=f"audit-{stamp}.xlsx",
                            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    def replay_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, REPLAY)
        name = (request.GET.get("account") or "").strip()
        error = ""
        state = None
        differences = None
        if name:
            account = Account.objects.filter(name=name).first()
            if account is None:
                error = gettext("No account %(name)r") % {"name": name}
            elif request.GET.get("check"):
                state, differences = account_replay_check(account_name=name)
            else:
                try:
                    state = account_replay(account=account, at=parse_moment(request.GET.get("at", ""), name="at"))
                except InvalidOrder as exc:
                    error = str(exc)
        positions = sorted((p for p in state.positions.values() if not p.empty), key=lambda p: p.symbol) if state else []
        return TemplateResponse(request, "admin/compliance/replay.html", self._context(
            request, gettext("Account replay"), form=request.GET, state=state, positions=positions,
            orders=list(state.open_orders.values()) if state else [], differences=differences, error=error,
            accounts=list(Account.objects.order_by("name").values_list("name", flat=True)),
            at_text=local_time(state.at) if state and state.at else ""))


    def risk_report_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, VIEW)
        today = timezone.localdate()
        try:
            since = date.fromisoformat(request.GET.get("since") or today.isoformat())
            until = date.fromisoformat(request.GET.get("until") or since.isoformat())
        except ValueError:
            since = until = today
        report = risk_effectiveness(since=since, until=until)
        most = max((rule.checked for rule in report.rules), default=0)
        return TemplateResponse(request, "admin/compliance/risk_report.html", self._context(
            request, gettext("Risk effectiveness"), report=report, most=most,
            outcomes=sorted(report.overridden_outcomes.items()), decisions=sorted(report.decisions.items())))

    def _day(self, request: HttpRequest, name: str, default: date, errors: list[str]) -> date:
        text = (request.GET.get(name) or "").strip()
        if not text:
            return default
        try:
            return date.fromisoformat(text)
        except ValueError:
            errors.append(gettext("%(field)s: dates are YYYY-MM-DD, not %(text)s") % {"field": name, "text": text})
            return default

    def daily_report_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, VIEW)
        errors: list[str] = []
        day = self._day(request, "day", timezone.localdate(), errors)
        account = (request.GET.get("account") or "").strip()
        report = daily_trading(day=day, account=account)
        strategies = report.by_strategy
        chart = {"kind": "bars", "axis": gettext("Strategy"), "x": list(range(len(strategies))), "names": [row.strategy or "-" for row in strategies],
                 "series": [{"label": label, "values": [float(getattr(row, name)) for row in strategies]}
                            for label, name in ((gettext("Realised P&L"), "realized_pnl"),
                                                (gettext("Unrealised P&L"), "unrealized_pnl"), (gettext("Fees"), "fees"),
                                                (gettext("Slippage"), "slippage"))]}
        return TemplateResponse(request, "admin/compliance/daily_report.html", self._context(
            request, gettext("Daily trading report"), report=report, errors=errors, account=account,
            accounts=list(Account.objects.order_by("name").values_list("name", flat=True)), chart=chart))

    def strategy_report_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, VIEW)
        errors: list[str] = []
        until = self._day(request, "until", timezone.localdate(), errors)
        since = self._day(request, "since", until.replace(day=1), errors)
        if since > until:
            errors.append(gettext("since: must not be after until"))
            since = until
        account = (request.GET.get("account") or "").strip()
        report = strategy_effectiveness(since=since, until=until, account=account)
        chart = {"kind": "lines", "axis": gettext("Trading day"), **report.chart()}
        return TemplateResponse(request, "admin/compliance/strategy_report.html", self._context(
            request, gettext("Strategy effectiveness"), report=report, errors=errors, account=account,
            strategies=[(strategy, report.days[strategy], report.totals[strategy]) for strategy in sorted(report.days)],
            accounts=list(Account.objects.order_by("name").values_list("name", flat=True)), chart=chart))

    # ------------------------------------------------------------------ compliance report (issue 12)

    def compliance_report_view(self, request: HttpRequest) -> HttpResponse:
        """Abnormal trading per account and day, with a chart of each one's share of the
        high-frequency lines, and the stakes near 5% (compliance/report_compliance.py)."""
        self._require(request, VIEW)
        today = timezone.localdate()
        error = ""
        try:
            since = date.fromisoformat(request.GET.get("since") or today.isoformat())
            until = date.fromisoformat(request.GET.get("until") or since.isoformat())
        except ValueError:
            since = until = today
            error = gettext("Dates are YYYY-MM-DD: showing today.")
        report = compliance_report(since=since, until=until, account=(request.GET.get("account") or "").strip())
        return TemplateResponse(request, "admin/compliance/compliance_report.html", self._context(
            request, gettext("Compliance report"), report=report, error=error, chart=compliance_chart(report),
            warn_percent=report.warn_share * 100, stake_percent=report.stake_share * 100))
