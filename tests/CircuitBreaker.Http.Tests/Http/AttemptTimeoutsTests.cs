using Microsoft.Extensions.Time.Testing;

namespace CircuitBreaker.Http.Tests.Http;

public sealed class AttemptTimeoutsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    [Fact]
    public void Slot_FiresAtItsCallsDeadline()
    {
        var time = new FakeTimeProvider();
        var timeouts = new AttemptTimeouts(time);

        var slot = timeouts.Start(Timeout);
        time.Advance(Timeout - TimeSpan.FromMilliseconds(1));
        Assert.False(slot.Token.IsCancellationRequested);

        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(slot.Token.IsCancellationRequested);
        Assert.True(slot.TimedOut);
        slot.End();
    }

    [Fact]
    public void ReusedSlot_WhoseTimerAnEarlierCallArmed_FiresAtTheNewCallsDeadline()
    {
        var time = new FakeTimeProvider();
        var timeouts = new AttemptTimeouts(time);

        // The first call ends at once and leaves the slot's timer armed for its own deadline, 2 s from now.
        var first = timeouts.Start(Timeout);
        first.End();
        time.Advance(TimeSpan.FromSeconds(1.5));
        var second = timeouts.Start(Timeout);
        Assert.Same(first, second); // the same thread gets its slot back

        // The first call's deadline passes: the second, 0.5 s old, goes on.
        time.Advance(TimeSpan.FromSeconds(0.5));
        Assert.False(second.Token.IsCancellationRequested);

        time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.True(second.Token.IsCancellationRequested);
        Assert.True(second.TimedOut);
        second.End();

        // A fired slot comes back with a fresh source.
        var third = timeouts.Start(Timeout);
        Assert.False(third.Token.IsCancellationRequested);
        Assert.False(third.TimedOut);
        third.End();
    }

    [Fact]
    public void TwoRegistriesTakingTurnsOnOneThread_EachGetsItsOwnSlotsBack()
    {
        // Two hosts in one process (two service providers, a registry each) whose calls share the thread pool: each call
        // finds the other registry's slot cached on its thread. Neither may lose it and build a new slot, timer and all.
        var a = new AttemptTimeouts(new FakeTimeProvider());
        var b = new AttemptTimeouts(new FakeTimeProvider());
        var firstA = a.Start(Timeout);
        firstA.End();
        var firstB = b.Start(Timeout);
        firstB.End();

        for (var i = 0; i < 3; i++)
        {
            var slotA = a.Start(Timeout);
            slotA.End();
            var slotB = b.Start(Timeout);
            slotB.End();

            Assert.Same(firstA, slotA);
            Assert.Same(firstB, slotB);
        }
    }

    [Fact]
    public void CallerCancellation_CancelsTheToken_ButIsNotATimeout()
    {
        var timeouts = new AttemptTimeouts(new FakeTimeProvider());
        using var caller = new CancellationTokenSource();

        var slot = timeouts.Start(Timeout);
        slot.LinkCaller(caller.Token);
        caller.Cancel();

        Assert.True(slot.Token.IsCancellationRequested);
        Assert.False(slot.TimedOut);
        slot.End();

        var next = timeouts.Start(Timeout);
        Assert.False(next.Token.IsCancellationRequested);
        next.End();
    }

    [Fact]
    public void LinkCaller_ToATokenCancelledAlready_CancelsTheTokenAtOnce_ButIsNotATimeout()
    {
        var timeouts = new AttemptTimeouts(new FakeTimeProvider());
        using var caller = new CancellationTokenSource();

        var slot = timeouts.Start(Timeout);
        caller.Cancel();
        Assert.False(slot.Token.IsCancellationRequested); // not linked yet

        slot.LinkCaller(caller.Token);
        Assert.True(slot.Token.IsCancellationRequested);
        Assert.False(slot.TimedOut);
        slot.End();
    }

    [Fact]
    public void EndedSlot_ItsCallersLaterCancellation_DoesNotReachTheNextCall()
    {
        var timeouts = new AttemptTimeouts(new FakeTimeProvider());
        using var caller = new CancellationTokenSource();

        var slot = timeouts.Start(Timeout);
        slot.LinkCaller(caller.Token);
        slot.End();
        var next = timeouts.Start(Timeout);
        Assert.Same(slot, next);
        caller.Cancel();

        Assert.False(next.Token.IsCancellationRequested);
        next.End();
    }

    [Fact]
    public void IdleSlot_TimerFiring_CancelsNothing()
    {
        var time = new FakeTimeProvider();
        var timeouts = new AttemptTimeouts(time);

        var slot = timeouts.Start(Timeout);
        var token = slot.Token;
        slot.End();
        time.Advance(TimeSpan.FromSeconds(10));

        Assert.False(token.IsCancellationRequested);
    }
}
