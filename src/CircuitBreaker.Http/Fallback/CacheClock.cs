using Microsoft.Extensions.Internal;

namespace CircuitBreaker.Http;

/// <summary>
/// The fallback cache's clock, for its entries' ages and for <see cref="Microsoft.Extensions.Caching.Memory.MemoryCache"/>'s
/// own bookkeeping: the injected <see cref="TimeProvider"/>'s time when the cache was made, advanced by its
/// <see cref="CoarseClock"/>.
/// </summary>
/// <remarks>
/// A cached answer is served while a circuit is open, so this clock is read on every call to a broken host, where
/// the system's wall clock would cost five times the coarse one. Ages are whole seconds. It does not follow later
/// adjustments of the wall clock, which ages, being differences of this clock's own readings, do not need.
/// </remarks>
internal sealed class CacheClock : ISystemClock
{
    private readonly CoarseClock _clock;
    private readonly DateTimeOffset _origin;
    private readonly long _originUnits;

    public CacheClock(TimeProvider timeProvider)
    {
        _clock = CoarseClock.For(timeProvider);
        _origin = timeProvider.GetUtcNow();
        _originUnits = _clock.Now;
    }

    /// <inheritdoc />
    public DateTimeOffset UtcNow => _origin + _clock.ToTimeSpan(_clock.Now - _originUnits);
}
