# %% [markdown]
# # rewardkit in a notebook
#
# Cells (`# %%`) for Jupyter, VS Code or a plain `python walkthrough.py`. The sandbox stands in
# for QuestionPro and Splio, so every cell runs offline. The sync client works inside the
# notebook's running event loop; `AsyncQuestionPro` is there for `await`.

# %%
from __future__ import annotations

import datetime

import rewardkit

sb = rewardkit.Sandbox().start()
qp = sb.questionpro()  # QuestionPro(api_key=..., base_url=sb.url, rate_limit=None)
sp = sb.splio()
print(sb)

# %% [markdown]
# ## Build the rows
# A list of dicts (a DataFrame's `to_dict("records")`, or the DataFrame itself, works too).

# %%
survey_completions = [(12345678, "Ada"), (23456789, "Grace"), (34567890, "Katherine")]
rows: list[rewardkit.Row] = [
    {"panel_member_id": member, "points": 100, "comments": f"Thanks, {name}"}
    for member, name in survey_completions
]
rows.append({"panel_member_id": 12345678, "points": 0})  # a mistake: zero points, and a repeat

# %% [markdown]
# ## Validate without sending

# %%
problems = rewardkit.validate_rows(rows)
for p in problems:
    print(p)
rows = [r for i, r in enumerate(rows) if i not in {p.row for p in problems}]

# %% [markdown]
# ## Send

# %%
result = qp.award_points(rows)
print(result)
print(result.to_dict())

# %% [markdown]
# ## Inspect the ledger

# %%
print("ledger:", sb.ledger())
for award in sb.awards():
    print(award["panel_member_id"], award["points"], award["comments"])

# %% [markdown]
# ## Errors are typed exceptions

# %%
try:
    qp.award_points([{"panelMemberID": "12345678", "points": 10}])
except rewardkit.ValidationError as e:
    print(type(e).__name__, e.errors)

sb.inject("questionpro_points", status=403)
try:
    qp.award_points([(12345678, 10)])
except rewardkit.PermissionDeniedError as e:
    print(type(e).__name__, e.status_code, e.error_id, e.message)

# %% [markdown]
# ## A reward in Splio

# %%
reward = sp.create_reward(
    external_id="survey-thanks",
    name="Survey thank-you",
    holding_days=0,
    nqp_value=500,
    limited=True,
    auto_generated=True,
    max_attribution_count=1000,
    forced_validity=True,
    forced_validity_start=datetime.datetime(2026, 1, 1),
    forced_validity_end=datetime.datetime(2026, 12, 31, 23, 59, 59),
)
print(reward, reward.forced_validity_start)
print(rewardkit.validate_reward({"external_id": "x", "name": "X", "holding_days": 0, "nqp_value": 1}))

# %%
sb.close()
