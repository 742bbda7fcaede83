import factory

from instances.models import InstanceConfig


class InstanceConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InstanceConfig

    name = factory.Sequence(lambda n: f"tenant-{n}")
    evolution_url = factory.Sequence(lambda n: f"http://evolution-{n}.test")
    evolution_key = factory.Sequence(lambda n: f"evolution-key-{n:04d}-secret")
    whatsapp_instance = factory.LazyAttribute(lambda o: f"wa-{o.name}")
    session_id_prefix = factory.LazyAttribute(lambda o: f"{o.name}-")
    agent_api_url = factory.Sequence(lambda n: f"http://agents-{n}.test")
    agent_api_key = factory.Sequence(lambda n: f"agent-key-{n:04d}-secret")
    default_agent = "assistant"
    agent_timeout = 30
    is_default = False
