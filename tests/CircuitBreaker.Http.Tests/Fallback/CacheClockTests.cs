using Microsoft.Extensions.Time.Testing;

namespace CircuitBreaker.Http.Tests.Fallback;

public sealed class CacheClockTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 28, 6, 0, 0, TimeSpan.FromHours(2)));

    [Fact]
    public void UtcNow_FollowsTheTimeProvider_AsAUtcTime()
    {
        var clock = new CacheClock(_time);
        Assert.Equal(_time.GetUtcNow(), clock.UtcNow);
        Assert.Equal(TimeSpan.Zero, clock.UtcNow.Offset);

        _time.Advance(TimeSpan.FromMinutes(90));

        Assert.Equal(_time.GetUtcNow(), clock.UtcNow);
    }

    [Fact]
    public void Between_TwoReadings_IsTheTimeThatPassed()
    {
        var clock = new CacheClock(_time);
        var then = clock.Now;

        _time.Advance(TimeSpan.FromSeconds(42.5));

        Assert.Equal(TimeSpan.FromSeconds(42.5), clock.Between(then, clock.Now));
    }
}
