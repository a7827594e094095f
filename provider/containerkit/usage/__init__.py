"""Usage capture and right-sizing: what each container task try really used, and what it should ask for.

* :mod:`~containerkit.usage.record`: :class:`UsageRecord`, one per task try;
* :mod:`~containerkit.usage.docker_sampler` / :mod:`~containerkit.usage.kubernetes_sampler`: the
  samplers (Docker stats API; ``metrics.k8s.io`` PodMetrics);
* :mod:`~containerkit.usage.capture`: the operator hook-in points and the publishing channels
  (task log, XCom ``containerkit_usage``, the durable store, Airflow metrics gauges);
* :mod:`~containerkit.usage.store`: the durable JSON store every worker can write;
* :mod:`~containerkit.usage.recommend`: requests and limits from history;
* :mod:`~containerkit.usage.report_text` / :mod:`~containerkit.usage.report_html`: the outputs.

Import-light: nothing here imports Airflow, docker or kubernetes at module level.
"""

from containerkit.usage.record import UsageRecord

__all__ = ["UsageRecord"]
