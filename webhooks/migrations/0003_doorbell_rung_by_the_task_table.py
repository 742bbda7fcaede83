"""Once a trigger on django-tasks-db's task table; conversations are now the queue (0004).

Kept, empty, so that databases which applied it and new ones share one migration history;
0004 drops the trigger's function where it was installed.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0002_fk_indexes_covered_by_others")]

    operations: list[migrations.operations.base.Operation] = []
