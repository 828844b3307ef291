package chaos

import (
	"reflect"
	"testing"
	"time"
)

func TestCheckJudgesTheMessages(t *testing.T) {
	b := Bounds{Recovery: 30 * time.Second, StormFactor: 5, StormFloor: 20}
	for _, tc := range []struct {
		name string
		m    MessageObservation
		// refused are the sessions the schedule made Laravel refuse item by item.
		refused []string
		want    []string
	}{
		{"every message once and in order", MessageObservation{Written: 500}, nil, nil},
		{"a lost message", MessageObservation{Written: 500, Lost: 1, Sessions: []string{"users-i0-4"}}, nil, []string{InvMessages}},
		{"a duplicated message", MessageObservation{Written: 500, Duplicated: 1, Sessions: []string{"users-i0-4"}}, nil, []string{InvMessages}},
		{"a message out of order in its chat", MessageObservation{Written: 500, OutOfOrder: 1, Sessions: []string{"users-i0-4"}}, nil, []string{InvMessages}},
		{"lost in a session Laravel refused (dead-lettered by design)", MessageObservation{Written: 500, Lost: 3, Sessions: []string{"users-i0-3"}}, []string{"users-i0-3"}, nil},
		{"lost next to a refused session", MessageObservation{Written: 500, Lost: 3, Sessions: []string{"users-i0-3", "users-i0-4"}}, []string{"users-i0-3"}, []string{InvMessages}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := healthy()
			o.Messages, o.RefusedSessions = tc.m, tc.refused
			var got []string
			for _, v := range Check(o, b).Violations {
				got = append(got, v.Invariant)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("violations %v, want %v", got, tc.want)
			}
		})
	}
}
