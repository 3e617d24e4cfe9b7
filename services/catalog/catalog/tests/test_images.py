"""An image product's specifications: what they deploy, what the cloud resources cost,
and the itemised price of a deployment (``domain._check_images``, ``price_deployment``)."""

import pytest

from catalog import domain
from mercato.errors import ValidationError
from mercato.money import Money

IMAGE = {
    "image_id": "img-helix-22",
    "flavors": ["s6.medium.2", "s6.large.2"],
    "min_system_disk_gb": 40,
    "recommended_security_group": {"name": "helix", "rules": []},
}
HOURLY = domain.CloudPrice("hour", (("s6.large.2", 8), ("s6.medium.2", 4)), 1, 2)
MONTHLY = domain.CloudPrice("month", (("s6.large.2", 4800), ("s6.medium.2", 2400)), 10, 300)


def image_spec(prices=None, image=IMAGE, cloud_prices=(HOURLY, MONTHLY)):
    return domain.Specification(
        name="Standard",
        prices=prices
        or (
            domain.Price(domain.PAY_PER_USE, domain.HOUR, 50),
            domain.Price(domain.YEARLY_MONTHLY, domain.MONTH, 9900),
        ),
        image=image,
        cloud_prices=cloud_prices,
    )


def check(delivery_method, spec):
    domain.check_product(
        delivery_method=delivery_method,
        service_supervision=False,
        saas_endpoint_url=None,
        specifications=[spec],
    )


def fields_of(excinfo):
    return excinfo.value.fields


def test_an_image_specification_with_its_image_and_prices_is_accepted():
    check(domain.IMAGE, image_spec())


@pytest.mark.parametrize(
    ("spec", "field", "rule"),
    [
        (image_spec(image=None), "specifications.0.image", "is required for an image product"),
        (
            image_spec(cloud_prices=(HOURLY,)),
            "specifications.0.cloud_prices",
            "must price the cloud resources per month for its yearly_monthly price",
        ),
        (
            image_spec(
                cloud_prices=(HOURLY, domain.CloudPrice("month", (("s6.medium.2", 1),), 1, 1))
            ),
            "specifications.0.cloud_prices.1.flavors",
            "must price every flavor of the image; missing s6.large.2",
        ),
        (
            image_spec(cloud_prices=(HOURLY, HOURLY, MONTHLY)),
            "specifications.0.cloud_prices",
            "must have one price per period unit",
        ),
    ],
)
def test_an_image_specification_breaking_a_rule_is_refused_naming_the_field(spec, field, rule):
    with pytest.raises(ValidationError) as excinfo:
        check(domain.IMAGE, spec)
    assert rule in fields_of(excinfo)[field]


def test_a_one_time_image_prices_its_servers_by_the_hour():
    spec = image_spec(prices=(domain.Price(domain.ONE_TIME, None, 90000),), cloud_prices=(HOURLY,))
    check(domain.IMAGE, spec)
    with pytest.raises(ValidationError) as excinfo:
        check(domain.IMAGE, image_spec(prices=spec.prices, cloud_prices=(MONTHLY,)))
    assert fields_of(excinfo)["specifications.0.cloud_prices"]


def test_only_an_image_product_has_an_image_or_cloud_prices():
    with pytest.raises(ValidationError) as excinfo:
        check(domain.SAAS, image_spec())
    assert set(fields_of(excinfo)) >= {"specifications.0.image", "specifications.0.cloud_prices"}


def priced(spec, billing_mode, period=None):
    return domain.price_configuration(
        spec, currency="USD", billing_mode=billing_mode, period=period, quantity=None
    )


def sizing(**changes):
    data = {"flavor_id": "s6.large.2", "system_disk_gb": 50, "data_disks": [], "count": 1}
    data.update(changes)
    return domain.DeploymentSizing.from_dict(data)


def test_a_deployment_is_priced_line_by_line_for_its_periods_and_servers():
    spec = image_spec()
    three_months = priced(spec, domain.YEARLY_MONTHLY, domain.Period("month", 3))
    lines = domain.price_deployment(
        spec,
        three_months,
        sizing(data_disks=[{"size_gb": 100}], eip={"bandwidth_mbps": 5}, count=2),
    )
    by_item = {line.item: line for line in lines}
    assert by_item["image"].amount == Money(9900 * 3 * 2, "USD")
    assert by_item["servers"].unit_price == Money(4800 * 3, "USD")
    assert by_item["servers"].amount == Money(4800 * 3 * 2, "USD")
    # 50 GB system + 100 GB data, at 10 a GB-month, for 3 months, on 2 servers
    assert by_item["disks"].amount == Money(150 * 10 * 3 * 2, "USD")
    assert by_item["eip"].amount == Money(5 * 300 * 3 * 2, "USD")
    assert by_item["servers"].description == "2 x s6.large.2 for 3 months"


def test_pay_per_use_prices_one_hour_and_an_unset_system_disk_is_the_image_minimum():
    spec = image_spec()
    lines = domain.price_deployment(
        spec, priced(spec, domain.PAY_PER_USE), sizing(system_disk_gb=None)
    )
    by_item = {line.item: line for line in lines}
    assert by_item["image"].amount == Money(50, "USD")
    assert by_item["servers"].amount == Money(8, "USD")
    assert by_item["disks"].amount == Money(40 * 1, "USD")
    assert "eip" not in by_item


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"flavor_id": "c6.xlarge.2"}, "deployment.flavor_id"),
        ({"system_disk_gb": 20}, "deployment.system_disk_gb"),
    ],
)
def test_a_deployment_the_image_cannot_take_is_refused(changes, field):
    spec = image_spec()
    with pytest.raises(ValidationError) as excinfo:
        domain.price_deployment(spec, priced(spec, domain.PAY_PER_USE), sizing(**changes))
    assert field in fields_of(excinfo)


def test_an_image_needs_a_deployment_and_nothing_else_takes_one():
    spec = image_spec()
    with pytest.raises(ValidationError) as excinfo:
        domain.price_deployment(spec, priced(spec, domain.PAY_PER_USE), None)
    assert fields_of(excinfo) == {"deployment": ["is required for an image product"]}
    plain = domain.Specification("Standard", (domain.Price(domain.ONE_TIME, None, 100),))
    with pytest.raises(ValidationError) as excinfo:
        domain.price_deployment(plain, priced(plain, domain.ONE_TIME), sizing())
    assert fields_of(excinfo) == {"deployment": ["only an image product is deployed"]}
    assert domain.price_deployment(plain, priced(plain, domain.ONE_TIME), None) == ()
