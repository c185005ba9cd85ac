using Microsoft.Extensions.Internal;

namespace CircuitBreaker.Http;

/// <summary>
/// The fallback cache's clock: the injected <see cref="TimeProvider"/>'s <see cref="CoarseClock"/>, read in its own
/// units for the entries' ages, and as a wall-clock time (the time when the cache was made, advanced by it) for
/// <see cref="Microsoft.Extensions.Caching.Memory.MemoryCache"/>'s own bookkeeping.
/// </summary>
/// <remarks>
/// A cached answer is served while a circuit is open, so this clock is read on every call to a broken host, where
/// the system's wall clock would cost five times the coarse one. Ages are whole seconds, and differences of readings
/// in units, so the answer's own age costs no date arithmetic. It does not follow later adjustments of the wall
/// clock, which ages, being differences of this clock's own readings, do not need.
/// </remarks>
internal sealed class CacheClock : ISystemClock
{
    private readonly CoarseClock _clock;
    private long _originUtcTicks;
    private readonly long _originUnits;

    public CacheClock(TimeProvider timeProvider)
    {
        _clock = CoarseClock.For(timeProvider);
        _originUtcTicks = timeProvider.GetUtcNow().UtcTicks;
        _originUnits = _clock.Now;
    }

    /// <summary>Now, in the clock's units: what an entry records when stored, and what its age is measured from.</summary>
    public long Now => _clock.Now;

    /// <inheritdoc />
    // Built from ticks: adding a TimeSpan to a DateTimeOffset converts and validates it twice.
    public DateTimeOffset UtcNow => new(_originUtcTicks + _clock.ToTimeSpan(_clock.Now - _originUnits).Ticks, TimeSpan.Zero);

    /// <summary>
    /// Moves <see cref="UtcNow"/> on by one tick, for a cache that takes over another's entries: stored within one reading
    /// of the clock, they would all look equally recent to MemoryCache, which would then compact them in no order.
    /// </summary>
    public void Tick() => _originUtcTicks++;

    /// <summary>The time from the reading <paramref name="then"/> to the reading <paramref name="now"/>.</summary>
    public TimeSpan Between(long then, long now) => _clock.ToTimeSpan(now - then);
}
