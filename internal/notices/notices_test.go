package notices

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// THIRD_PARTY_NOTICES.md is what the module graph of the shipped binaries says today.
func TestNoticesFileIsCurrent(t *testing.T) {
	root := filepath.Join("..", "..")
	mods, err := Modules(context.Background(), root, Packages...)
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) < 10 {
		t.Fatalf("only %d third-party modules found", len(mods))
	}
	got, err := os.ReadFile(filepath.Join(root, FileName))
	if err != nil {
		t.Fatalf("%v (run make notices)", err)
	}
	if want := Render(mods); !bytes.Equal(got, want) {
		t.Fatalf("%s is not current: run make notices and commit it", FileName)
	}
	for _, m := range mods {
		if m.Path == "go.mau.fi/libsignal" && m.License != "GPL-3.0" {
			t.Errorf("libsignal classified as %s, want GPL-3.0 (the reason wagate is GPL-3.0-or-later)", m.License)
		}
	}
}

func TestClassify(t *testing.T) {
	cases := map[string]string{
		"MIT License\n\nPermission is hereby granted, free of charge, to any person":                                    "MIT",
		"Apache License\n                           Version 2.0, January 2004":                                          "Apache-2.0",
		"Redistribution and use in source and binary forms, with or without\nmodification ... Neither the name":         "BSD-3-Clause",
		"Redistribution and use in source and binary forms, with or without modification, are permitted":                "BSD-2-Clause",
		"Mozilla Public License Version 2.0\n==================================":                                        "MPL-2.0",
		"GNU GENERAL PUBLIC LICENSE\n   Version 3, 29 June 2007":                                                        "GPL-3.0",
		"Permission to use, copy, modify, and/or distribute this software for any purpose with or without fee":          "ISC",
		"This is free and unencumbered software released into the public domain.":                                       "Unlicense",
		"Creative Commons Attribution 4.0 International Public License\n\nBy exercising":                                "CC-BY-4.0",
		"  * The FreeType License, which is similar ...\n  * The GNU General Public License (GPL), version 2 or later.": "FTL OR GPL-2.0-or-later",
		"All rights reserved. Ask us.": "see the text",
	}
	for text, want := range cases {
		if got := Classify(text); got != want {
			t.Errorf("Classify(%.40q) = %s, want %s", text, got, want)
		}
	}
}

func TestRenderListsEveryModuleWithItsText(t *testing.T) {
	out := string(Render([]Module{{Path: "example.com/a", Version: "v1.0.0", LicenseFile: "LICENSE", License: "MIT", Text: "MIT text"}}))
	for _, want := range []string{"| example.com/a | v1.0.0 | MIT |", "## example.com/a v1.0.0", "MIT (LICENSE):", "````text\nMIT text\n````"} {
		if !strings.Contains(out, want) {
			t.Errorf("render lacks %q:\n%s", want, out)
		}
	}
}
