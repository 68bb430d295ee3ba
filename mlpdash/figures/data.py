"""The data: how many digits of each class each split holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.colors as pcolors
import plotly.graph_objects as go

from mlpdash.figures.base import BOTTOM_LEGEND, _figure, _layout


SPLIT_COLORS = {"training": pcolors.qualitative.Plotly[0], "validation": pcolors.qualitative.Plotly[1],
                "test": pcolors.qualitative.Plotly[2]}


def class_counts_figure(counts: Mapping[str, Sequence[int]]) -> go.Figure:
    """How many digits of each class each split holds, as grouped bars."""
    fig = _figure()
    for split, values in counts.items():
        fig.add_trace(go.Bar(x=[str(d) for d in range(len(values))], y=[int(v) for v in values], name=split,
                             marker_color=SPLIT_COLORS.get(split),
                             hovertemplate=f"{split}: %{{y:,}} digits of %{{x}}<extra></extra>"))
    return _layout(fig, title="Digits of each class in each split", height=300, uirevision="class-counts",
                   barmode="group", xaxis=dict(title="digit", type="category"), yaxis=dict(title="digits"),
                   legend=BOTTOM_LEGEND, margin=dict(l=60, r=20, t=40, b=90))
