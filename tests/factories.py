import factory

from instances.models import InstanceConfig
from webhooks.models import Conversation, Message


class InstanceConfigFactory(factory.django.DjangoModelFactory[InstanceConfig]):
    class Meta:
        model = InstanceConfig

    name = factory.Sequence(lambda n: f"tenant-{n}")
    evolution_url = factory.Sequence(lambda n: f"http://evolution-{n}.test")
    evolution_key = factory.Sequence(lambda n: f"evolution-key-{n:04d}-secret")
    # The instance that sent the captured webhooks in tests/webhooks/fixtures: a tenant takes
    # only webhooks from its own instance.
    whatsapp_instance = "acme-sales"
    session_id_prefix = factory.LazyAttribute(lambda o: f"{o.name}-")
    agent_api_url = factory.Sequence(lambda n: f"http://agents-{n}.test")
    agent_api_key = factory.Sequence(lambda n: f"agent-key-{n:04d}-secret")
    default_agent = "assistant"
    agent_timeout = 30
    is_default = False
    # As tenants made before webhook authentication: the webhook tests send no proof.
    require_webhook_auth = False
    webhook_secret = ""
    # The captured webhooks in tests/webhooks/fixtures are from 2025: answered, however old.
    max_message_age_seconds = 0
    # As tenants before typing indicators (the model's default is on): Evolution then gets
    # only the calls a test is about. The typing tests switch it on.
    show_typing = False

    class Params:
        # InstanceConfigFactory.create(authenticated=True): as a tenant created today.
        authenticated = factory.Trait(
            require_webhook_auth=True,
            webhook_secret=factory.Sequence(lambda n: f"webhook-secret-{n:04d}-{'s' * 24}"),
        )


class ConversationFactory(factory.django.DjangoModelFactory[Conversation]):
    class Meta:
        model = "webhooks.Conversation"
        django_get_or_create = ("instance", "chat_jid")

    instance = factory.SubFactory(InstanceConfigFactory)
    chat_jid = factory.Sequence(lambda n: f"55119{n:08d}@s.whatsapp.net")


class MessageFactory(factory.django.DjangoModelFactory[Message]):
    """A received 1:1 text message; its conversation is the tenant's chat, made when missing."""

    class Meta:
        model = "webhooks.Message"

    instance = factory.SubFactory(InstanceConfigFactory)
    chat_jid = factory.Sequence(lambda n: f"55119{n:08d}@s.whatsapp.net")
    conversation = factory.SubFactory(
        ConversationFactory,
        instance=factory.SelfAttribute("..instance"),
        chat_jid=factory.SelfAttribute("..chat_jid"),
    )
    whatsapp_id = factory.Sequence(lambda n: f"3EB0{n:012d}")
    phone = factory.LazyAttribute(lambda o: o.chat_jid.partition("@")[0])
    reply_to = factory.LazyAttribute(lambda o: o.phone)
    whatsapp_user_id = factory.LazyAttribute(lambda o: o.chat_jid)
    push_name = "Maria"
    kind = "text"
    text = "Oi! Vocês abrem amanhã?"
    raw_payload = factory.LazyAttribute(
        lambda o: {
            "event": "messages.upsert",
            "instance": o.instance.whatsapp_instance,
            "data": {"key": {"id": o.whatsapp_id, "remoteJid": o.chat_jid, "fromMe": False}},
        }
    )
