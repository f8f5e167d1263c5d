"""The analytics endpoints of API.md: every figure for the calling channel's programme. Thin: parse, call one
selector, render."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFound
from loyalty import program_config as loyalty_services
from members import selectors as member_selectors

from .. import clv, selectors
from ..sql import Scope
from . import serializers as s

SCOPE = {"GET": "analytics:read"}


def _dates(name):
    return OpenApiParameter(name, str, description="YYYY-MM-DD, a day in the programme's time zone")


class AnalyticsView(APIView):
    required_scopes = SCOPE

    @property
    def program(self):
        if not hasattr(self, "_program"):
            self._program = loyalty_services.program_for_channel(self.request.user.channel)
        return self._program

    def today(self) -> dt.date:
        return timezone.now().astimezone(ZoneInfo(self.program.time_zone)).date()

    def parsed(self, serializer_class):
        serializer = serializer_class(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class KpisView(AnalyticsView):
    @extend_schema(parameters=[_dates("from"), _dates("to")], responses=s.KpisSerializer)
    def get(self, request):
        values = self.parsed(s.WindowInputSerializer)
        date_to = values.get("to") or self.today()
        date_from, date_to = s.window(values.get("from") or date_to - dt.timedelta(days=29), date_to)
        figures = selectors.kpis_answer(Scope(program=self.program, date_from=date_from, date_to=date_to))
        return Response(s.KpisSerializer(figures).data)


class CohortsView(AnalyticsView):
    @extend_schema(
        parameters=[OpenApiParameter("period", str, enum=["month", "quarter"]), _dates("from"), _dates("to")],
        responses=s.CohortsSerializer,
    )
    def get(self, request):
        values = self.parsed(s.CohortInputSerializer)
        date_to = values.get("to") or self.today()
        year, month0 = divmod(date_to.year * 12 + date_to.month - 1 - 11, 12)
        # Default: the twelve months up to `to`.
        date_from, date_to = s.window(values.get("from") or dt.date(year, month0 + 1, 1), date_to)
        scope = Scope(program=self.program, date_from=date_from, date_to=date_to)
        return Response(s.CohortsSerializer(selectors.cohorts(scope, period=values["period"])).data)


class RfmView(AnalyticsView):
    @extend_schema(parameters=[_dates("as_of")], responses=s.RfmSerializer)
    def get(self, request):
        values = self.parsed(s.RfmInputSerializer)
        return Response(s.RfmSerializer(selectors.rfm_counts(program=self.program, as_of=values.get("as_of"))).data)


def _no_fit():
    return NotFound(_("No CLV model has been fitted for this programme yet (python manage.py fit_clv)."))


class ClvView(AnalyticsView):
    @extend_schema(responses=s.ClvSerializer)
    def get(self, request):
        fit = selectors.clv_latest_fit(self.program)
        if fit is None:
            raise _no_fit()
        answer = {
            "as_of": fit.as_of,
            "time_unit": "week",
            "members": fit.members,
            "repeat_members": fit.repeat_members,
            "bgnbd": {
                "r": fit.r,
                "alpha": fit.alpha,
                "a": fit.a,
                "b": fit.b,
                "log_likelihood": fit.bgnbd_log_likelihood,
            },
            "gamma_gamma": {"p": fit.p, "q": fit.q, "v": fit.v, "log_likelihood": fit.gamma_gamma_log_likelihood},
        }
        return Response(s.ClvSerializer(answer).data)


class MemberClvView(AnalyticsView):
    @extend_schema(parameters=[OpenApiParameter("horizon_weeks", int)], responses=s.MemberClvSerializer)
    def get(self, request, member_no):
        values = self.parsed(s.MemberClvInputSerializer)
        member = member_selectors.member_by_number(
            member_no=member_no, with_related=False, visible_to=self.request.user.channel
        )
        if member is None:
            raise NotFound(_("No member with number %(member_no)s.") % {"member_no": member_no})
        score = selectors.member_score(member=member, program=self.program)
        fit = selectors.clv_fit_of(score) if score is not None and score.clv_as_of is not None else None
        if fit is None:
            if selectors.clv_latest_fit(self.program) is None:
                raise _no_fit()
            raise NotFound(
                _("Member %(member_no)s had no order in this programme when the CLV model was fitted.")
                % {"member_no": member_no}
            )
        predicted = clv.member_clv(
            fit,
            x=score.x,
            t_x=score.t_x,
            T=score.T,
            m=float(score.repeat_mean_amount or 0),
            horizon_weeks=values["horizon_weeks"],
        )
        answer = {"as_of": score.clv_as_of, "x": score.x, "t_x": round(score.t_x, 4), "T": round(score.T, 4)}
        answer |= {
            name: f"{value:.4f}" if name in ("p_alive", "expected_purchases") else f"{value:.2f}"
            for name, value in predicted.items()
        }
        return Response(s.MemberClvSerializer(answer).data)
