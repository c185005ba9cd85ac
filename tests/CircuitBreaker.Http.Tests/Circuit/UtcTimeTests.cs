namespace CircuitBreaker.Http.Tests.Circuit;

public sealed class UtcTimeTests
{
    [Fact]
    public void RoundTrip_TimeWithAnOffset_KeepsTheInstantInUtc()
    {
        var local = new DateTimeOffset(2026, 11, 27, 23, 59, 59, 123, TimeSpan.FromHours(2)).AddTicks(4567);

        DateTimeOffset back = (UtcTime)local;

        Assert.Equal(local.UtcTicks, back.UtcTicks);
        Assert.Equal(TimeSpan.Zero, back.Offset);
    }

    [Fact]
    public void Default_IsTheDefaultDateTimeOffset()
    {
        DateTimeOffset converted = default(UtcTime);

        Assert.Equal(default, converted);
    }

    [Fact]
    public void Nullable_Null_StaysNull()
    {
        UtcTime? none = null;
        UtcTime? some = DateTimeOffset.UnixEpoch;

        DateTimeOffset? noneBack = none;
        DateTimeOffset? someBack = some;

        Assert.Null(noneBack);
        Assert.Equal(DateTimeOffset.UnixEpoch, someBack);
    }
}
