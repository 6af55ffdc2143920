"""The estate as a Dagster resource: validated configuration, one engine per source, the control database."""

from contextlib import ExitStack
from functools import cached_property

import dagster as dg
from pydantic import PrivateAttr

from anonymizers.keys import Key
from pipelines.coordination import holds_daily_lease, report_takeovers, run_ended
from retention.apply.applier import DEFAULT_BATCH_ROWS
from retention.config import settings
from retention.config.keys import Keyring, load_keyring
from retention.config.loading import EstateConfig, load_config
from retention.config.problems import ConfigError
from retention.storage.engines import Estate, is_demo
from retention.storage.leases import DAILY, LeaseBusy, acquire, heartbeat, lease_seconds
from retention.storage.preflight import preflight
from retention.storage.schema import ensure_schema


class EstateResource(dg.ConfigurableResource):
    """Everything a run needs to reach the estate; the key is loaded here and never put into run config."""

    catalog_path: str = str(settings.catalog_path())
    policy_path: str = str(settings.policy_path())
    apply_batch_rows: int = settings.batch_rows(DEFAULT_BATCH_ROWS)
    """Rows per apply batch (one transaction each); memory of the apply step grows with this, not the table."""

    _estate: Estate | None = PrivateAttr(default=None)
    _keyring: Keyring | None = PrivateAttr(default=None)
    _beating: ExitStack = PrivateAttr(default_factory=ExitStack)

    @cached_property
    def config(self) -> EstateConfig:
        return load_config(self.catalog_path, self.policy_path)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """The one validation pass of every command, before the run's first step writes anything. The databases
        are compared with the catalog by the job's own `source_schema` checks, which block the plan and apply
        and show in the UI which column drifted; here the files and the environment are checked."""
        config = self.config
        keyring, notice = load_keyring(demo=is_demo(config.catalog))
        if notice and context.log is not None:
            context.log.warning(notice)
        found = preflight(self.catalog_path, self.policy_path, databases=False)
        if found.problems:
            raise dg.Failure(description=str(ConfigError(found.problems)))
        self._keyring = keyring
        self._estate = Estate.connect(config.catalog)
        run, instance = context.run, context.instance
        if run is not None and instance is not None and holds_daily_lease(run):
            self._hold_daily(context, instance, run)

    def _hold_daily(self, context: dg.InitResourceContext, instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
        """One daily run at a time: every step of a daily run holds the daily lease (taken by its first step,
        renewed by the others) and beats while it works. A second run stops here, before it reads anything,
        naming the run that holds the lease; a killed run's lease is taken over and reported."""
        control = self.estate.control
        assert control is not None, "the daily job always has a control database (preflight checks it)"
        ensure_schema(control)
        seconds = lease_seconds()
        try:
            taken = acquire(
                control,
                [DAILY],
                run.run_id,
                seconds=seconds,
                what="the daily run's lease",
                finished=lambda owner: run_ended(instance, owner),
            )
        except LeaseBusy as busy:
            self.estate.dispose()
            self._estate = None
            raise dg.Failure(
                description=f"another daily run is under way: {busy.holder.describe()}. This run changed nothing; run "
                "the day again once that run has ended."
            ) from None
        for alert in report_takeovers(instance, control, taken, by=run.run_id, job_name=run.job_name):
            if context.log is not None:
                context.log.warning(alert.text())
        self._beating.enter_context(heartbeat(control, run.run_id, seconds=seconds))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._beating.close()
        if self._estate is not None:
            self._estate.dispose()

    @property
    def estate(self) -> Estate:
        if self._estate is None:
            raise RuntimeError("the estate resource was used outside a run")
        return self._estate

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            raise RuntimeError("the estate resource was used outside a run")
        return self._keyring

    @property
    def subject_key(self) -> Key:
        return self.keyring.subject
