import factory
from django.utils import timezone

from members import services
from members.models import Channel, Member


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"channel-{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())
    kind = Channel.Kind.POS


class MemberFactory(factory.django.DjangoModelFactory):
    """Members as the service creates them (a number from the sequence, normalised contacts), joined through the
    `pos-shanghai` channel of the tests (the demo programme's channel), so that its partners see them."""

    class Meta:
        model = Member

    name = factory.Faker("name", locale="zh_CN")
    phone = factory.Sequence(lambda n: f"+86138{n:08d}")
    email = factory.Sequence(lambda n: f"member{n}@example.com")
    joined_at = factory.LazyFunction(timezone.now)
    join_channel = factory.SubFactory(ChannelFactory, code="pos-shanghai", name="上海南京西路门店")

    @factory.lazy_attribute
    def member_no(self):
        return services.member_numbers_allocate(count=1)[0]
