package format_test

import (
	"fmt"

	"github.com/allot/allot/format"
)

func Example() {
	t := format.MustParse("LP{n:AA9}")
	for _, n := range []int64{0, 1, 10, 6759} {
		id, _ := t.Render(n, format.Date{})
		fmt.Println(id)
	}
	_, err := t.Render(6760, format.Date{})
	fmt.Println(err)
	// Output:
	// LPAA0
	// LPAA1
	// LPAB0
	// LPZZ9
	// format: number does not fit the mask: 6760 is not below the capacity 6760 of template "LP{n:AA9}"
}

func ExampleTemplate_Decode() {
	t := format.MustParse("INV-{yyyy}{mm}-{n:4}{check:luhn}")
	id, _ := t.Render(42, format.Date{Year: 2024, Month: 3, Day: 7})
	fmt.Println(id)
	d, err := t.Decode(id)
	fmt.Println(d.Number, d.Date.Year, d.Date.Month, d.Date.Day, err)
	_, err = t.Decode("INV-202403-00421")
	fmt.Println(err)
	// Output:
	// INV-202403-00424
	// 42 2024 3 0 <nil>
	// format: check character does not match: luhn at byte 15: got '1', want '4'
}

func ExampleParse() {
	_, err := format.Parse("ID-{x}{n}")
	fmt.Println(err)
	// Output:
	// format: position 3: unknown token "{x}" (want {n}, {n:WIDTH}, {n:MASK}, {yyyy}, {yy}, {mm}, {dd}, {check:luhn|mod97|mod37|gs1})
}
