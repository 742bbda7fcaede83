from django.contrib.messages import get_messages

CHANGELIST_URL = "/admin/webhooks/message/"


def listed(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {message.pk for message in response.context["cl"].result_list}


def notices(response) -> list[tuple[int, str]]:
    return [(notice.level, str(notice)) for notice in get_messages(response.wsgi_request)]
