"""The estate as a Dagster resource: validated configuration, one engine per source, the control database."""

import os
from functools import cached_property

import dagster as dg
from pydantic import PrivateAttr

from anonymizers.keys import Key
from retention.apply.applier import DEFAULT_BATCH_ROWS
from retention.config import settings
from retention.config.keys import Keyring, load_keyring
from retention.config.loading import EstateConfig, load_config
from retention.config.problems import ConfigError
from retention.storage.engines import Estate, is_demo
from retention.storage.preflight import preflight


class EstateResource(dg.ConfigurableResource):
    """Everything a run needs to reach the estate; the key is loaded here and never put into run config."""

    catalog_path: str = str(settings.catalog_path())
    policy_path: str = str(settings.policy_path())
    apply_batch_rows: int = int(os.environ.get("RETENTION_BATCH_ROWS", str(DEFAULT_BATCH_ROWS)))
    """Rows per apply batch (one transaction each); memory of the apply step grows with this, not the table."""

    _estate: Estate | None = PrivateAttr(default=None)
    _keyring: Keyring | None = PrivateAttr(default=None)

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

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
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
