package js

import (
	"crypto/md5"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"

	"wagate/simulator/metrics"
)

// GroupTree records the groups and checks of a run in first-seen order, for the summary's
// root_group.
type GroupTree struct {
	mu   sync.Mutex
	root *groupNode
}

type groupNode struct {
	name, path string
	groups     []*groupNode
	byName     map[string]*groupNode
	checks     []*metrics.Check
	checkBy    map[string]*metrics.Check
}

func newGroupNode(name, path string) *groupNode {
	return &groupNode{name: name, path: path, byName: map[string]*groupNode{}, checkBy: map[string]*metrics.Check{}}
}

// NewGroupTree returns a tree holding only the root group.
func NewGroupTree() *GroupTree { return &GroupTree{root: newGroupNode("", "")} }

func (t *GroupTree) node(path string) *groupNode {
	n := t.root
	if path == "" {
		return n
	}
	for _, name := range strings.Split(strings.TrimPrefix(path, "::"), "::") {
		c := n.byName[name]
		if c == nil {
			c = newGroupNode(name, n.path+"::"+name)
			n.byName[name] = c
			n.groups = append(n.groups, c)
		}
		n = c
	}
	return n
}

// AddGroup makes sure the group at path appears in the summary.
func (t *GroupTree) AddGroup(path string) {
	t.mu.Lock()
	t.node(path)
	t.mu.Unlock()
}

// AddCheck counts one outcome of check name in the group at path.
func (t *GroupTree) AddCheck(path, name string, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.node(path)
	c := n.checkBy[name]
	if c == nil {
		cp := path + "::" + name
		c = &metrics.Check{Name: name, Path: cp, ID: md5Hex(cp)}
		n.checkBy[name] = c
		n.checks = append(n.checks, c)
	}
	if ok {
		c.Passes++
	} else {
		c.Fails++
	}
}

// Root renders the tree in the summary's shape.
func (t *GroupTree) Root() metrics.Group {
	t.mu.Lock()
	defer t.mu.Unlock()
	return render(t.root)
}

func render(n *groupNode) metrics.Group {
	g := metrics.Group{Name: n.name, Path: n.path, ID: md5Hex(n.path), Groups: []metrics.Group{}, Checks: []metrics.Check{}}
	for _, c := range n.groups {
		g.Groups = append(g.Groups, render(c))
	}
	for _, c := range n.checks {
		g.Checks = append(g.Checks, *c)
	}
	return g
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (vu *VU) moduleK6() goja.Value {
	o := vu.RT.NewObject()
	must(o.Set("check", vu.check))
	must(o.Set("group", vu.group))
	// A FunctionCall function: goja calls it without reflection (sleep runs in every loop).
	must(o.Set("sleep", func(call goja.FunctionCall) goja.Value {
		vu.sleep(call.Argument(0).ToFloat())
		return goja.Undefined()
	}))
	must(o.Set("fail", func(msg goja.Value) goja.Value {
		m := ""
		if msg != nil && !goja.IsUndefined(msg) {
			m = msg.String()
		}
		panic(vu.RT.NewGoError(errorString(m)))
	}))
	must(o.Set("randomSeed", func(seed int64) {
		r := rand.New(rand.NewPCG(uint64(seed), uint64(seed)))
		must(vu.RT.GlobalObject().Get("Math").ToObject(vu.RT).Set("random", func() float64 { return r.Float64() }))
	}))
	return o
}

type errorString string

func (e errorString) Error() string { return string(e) }

func (vu *VU) isAsync(fn goja.Value) bool {
	if o, ok := fn.(*goja.Object); ok {
		if c := o.Get("constructor"); c != nil {
			if co, ok := c.(*goja.Object); ok {
				if n := co.Get("name"); n != nil && n.String() == "AsyncFunction" {
					return true
				}
			}
		}
	}
	return false
}

// check(value, {name: fn|bool}, [tags]): one checks sample per name, true when all pass.
func (vu *VU) check(call goja.FunctionCall) goja.Value {
	if vu.initCtx {
		vu.Throw("check() can't be called in the init context")
	}
	val := call.Argument(0)
	sets := call.Argument(1)
	if goja.IsUndefined(sets) || goja.IsNull(sets) {
		return vu.RT.ToValue(true)
	}
	obj := sets.ToObject(vu.RT)
	extra := vu.tagsArg(call.Argument(2))
	all := true
	for _, name := range obj.Keys() {
		if strings.Contains(name, "::") {
			vu.Throw("group and check names may not contain '::'")
		}
		v := obj.Get(name)
		var ok bool
		if fn, isFn := goja.AssertFunction(v); isFn {
			if vu.isAsync(v) {
				vu.Throw("check %q: async functions are not supported in check()", name)
			}
			r, err := fn(goja.Undefined(), val)
			if err != nil {
				vu.recordCheck(name, false, extra)
				panic(err)
			}
			ok = r.ToBoolean()
		} else {
			ok = v.ToBoolean()
		}
		vu.recordCheck(name, ok, extra)
		all = all && ok
	}
	return vu.RT.ToValue(all)
}

func (vu *VU) recordCheck(name string, ok bool, extra map[string]string) {
	tags := vu.Tags()
	for k, v := range extra {
		tags[k] = v
	}
	tags["check"] = name
	vu.S.Registry.Rate("checks", ok, tags)
	vu.S.Groups.AddCheck(vu.groupPath, name, ok)
}

func (vu *VU) tagsArg(v goja.Value) map[string]string {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	o := v.ToObject(vu.RT)
	out := map[string]string{}
	for _, k := range o.Keys() {
		out[k] = o.Get(k).String()
	}
	return out
}

// group(name, fn): runs fn with the group tag set, emits group_duration, returns fn's value.
func (vu *VU) group(name string, fn goja.Value) goja.Value {
	if vu.initCtx {
		vu.Throw("group() can't be called in the init context")
	}
	if strings.Contains(name, "::") {
		vu.Throw("group and check names may not contain '::'")
	}
	f, ok := goja.AssertFunction(fn)
	if !ok {
		vu.Throw("group %q: the second argument must be a function", name)
	}
	if vu.isAsync(fn) {
		vu.Throw("group %q: async functions are not supported in group()", name)
	}
	parent := vu.groupPath
	vu.groupPath = parent + "::" + name
	vu.S.Groups.AddGroup(vu.groupPath)
	start := time.Now()
	defer func() { vu.groupPath = parent }()
	r, err := f(goja.Undefined())
	if err != nil {
		panic(err)
	}
	vu.S.Registry.ObserveDuration("group_duration", time.Since(start), vu.Tags())
	return r
}

// sleep(seconds) waits, returning early when the iteration ends.
func (vu *VU) sleep(secs float64) {
	d := time.Duration(secs * float64(time.Second))
	if d <= 0 {
		return
	}
	// One timer per VU, reset by each sleep: a script's loop sleeps again and again (since Go 1.23
	// a stopped or fired timer's channel holds no stale value, so Reset needs no drain).
	t := vu.sleepTimer
	if t == nil {
		t = time.NewTimer(d)
		vu.sleepTimer = t
	} else {
		t.Reset(d)
	}
	ctx := vu.ctx
	if ctx == nil {
		<-t.C
		return
	}
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
}
