using Microsoft.Extensions.Internal;

namespace CircuitBreaker.Http;

/// <summary>
/// The fallback cache's clock, for its entries' ages and for <see cref="Microsoft.Extensions.Caching.Memory.MemoryCache"/>'s
/// own bookkeeping: the injected <see cref="TimeProvider"/>, read cheaply when it is the system's.
/// </summary>
/// <remarks>
/// A cached answer is served while a circuit is open, so this clock is read on every call to a broken host. The
/// system's wall clock costs a precise timestamp per read, which is slow on many virtual machines; ages are whole
/// seconds, so the system provider is read once and then advanced by <see cref="Environment.TickCount64"/>, the
/// clock the runtime's timers use. It does not follow later adjustments of the wall clock, which ages, being
/// differences of this clock's own readings, do not need.
/// </remarks>
internal sealed class CacheClock : ISystemClock
{
    private readonly TimeProvider _timeProvider;
    private readonly bool _system;
    private readonly DateTimeOffset _origin;
    private readonly long _originTicks;

    public CacheClock(TimeProvider timeProvider)
    {
        _timeProvider = timeProvider;
        _system = ReferenceEquals(timeProvider, TimeProvider.System);
        _origin = timeProvider.GetUtcNow();
        _originTicks = Environment.TickCount64;
    }

    /// <inheritdoc />
    public DateTimeOffset UtcNow => _system ? _origin + TimeSpan.FromMilliseconds(Environment.TickCount64 - _originTicks) : _timeProvider.GetUtcNow();
}
