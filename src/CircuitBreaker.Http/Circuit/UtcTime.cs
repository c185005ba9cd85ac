namespace CircuitBreaker.Http;

/// <summary>
/// A point in time kept as UTC ticks: 8 bytes, where a <see cref="DateTimeOffset"/> takes 16 (24 when nullable).
/// </summary>
/// <remarks>
/// A circuit keeps several of these once it has failed (in the state machine's cold state), and with many hosts in
/// trouble at once every byte of a circuit counts. The times all come from <see cref="TimeProvider.GetUtcNow"/>, so
/// only a zero offset is lost. The conversions are implicit so that the state machine compares and subtracts them as
/// the times they are.
/// </remarks>
internal readonly struct UtcTime
{
    private readonly long _utcTicks;

    private UtcTime(long utcTicks) => _utcTicks = utcTicks;

    public static implicit operator DateTimeOffset(UtcTime time) => time.ToDateTimeOffset();

    public static implicit operator UtcTime(DateTimeOffset time) => FromDateTimeOffset(time);

    public static UtcTime FromDateTimeOffset(DateTimeOffset time) => new(time.UtcTicks);

    public DateTimeOffset ToDateTimeOffset() => new(_utcTicks, TimeSpan.Zero);
}
