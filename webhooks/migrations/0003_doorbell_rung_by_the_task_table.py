"""PostgreSQL: the task table sends the doorbell's NOTIFY itself, for every task ready now.

A statement of its own per queued task cost each webhook a round trip, its share of the GIL
and about 0.1 ms of CPU; a trigger rings in the INSERT that queues the task. NOTIFY is still
delivered at commit only, and once per transaction however many tasks it queued. Tasks
deferred to later (retries) do not ring: the workers' poll finds them. The channel is
webhooks.doorbell.CHANNEL; other databases have nothing to install.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

CHANNEL = "omnihub_tasks"
FUNCTION = "omnihub_ring_doorbell"


def install(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("django_tasks_database", "DBTaskResult")._meta.db_table
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END $$
        """
    )
    # django-tasks-db stores "no run_after" as 9999-01-01 UTC, meaning "now". Without a zone,
    # the literal would be read in the migrating session's time zone when the trigger is made.
    schema_editor.execute(
        f"""
        CREATE TRIGGER {FUNCTION} AFTER INSERT ON "{table}" FOR EACH ROW
        WHEN (NEW.status = 'READY'
              AND (NEW.run_after >= '9999-01-01 00:00:00+00' OR NEW.run_after <= now()))
        EXECUTE FUNCTION {FUNCTION}()
        """
    )


def uninstall(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("django_tasks_database", "DBTaskResult")._meta.db_table
    schema_editor.execute(f'DROP TRIGGER IF EXISTS {FUNCTION} ON "{table}"')
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0002_fk_indexes_covered_by_others"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
